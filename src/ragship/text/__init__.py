"""Text analysis: words, stemming and stop words, sentences, Markdown blocks."""
