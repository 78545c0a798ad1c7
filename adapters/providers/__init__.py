"""One module per provider; each composes a shared signing scheme with its own normalizer."""
