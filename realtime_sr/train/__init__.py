"""Training: data (random HR patches, LR made on the fly), losses, the loop, recipes."""
