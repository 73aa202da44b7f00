2a2b2c2d2e2f2g2hB
past_cache