module ragship.local/promtool

go 1.26.0

require github.com/prometheus/prometheus v0.315.1

replace cloud.google.com/go => cloud.google.com/go v0.123.0
