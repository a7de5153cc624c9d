"""RISE (Qu et al., 2024): multi-turn episodes and weighted examples (`episodes`); `method` registers
``curate.method: rise``."""
