"""Reading and plotting runs (eprop-dist plot)."""
