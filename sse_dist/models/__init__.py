"""Speaker-embedding networks."""
