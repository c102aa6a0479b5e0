"""What production does: quality metrics of live answers and the shadow challenger."""
