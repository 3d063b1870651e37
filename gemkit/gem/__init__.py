"""GEM: Cognitive Filtering (k candidates, entropy-guided scores) and the group machinery SEGA uses."""
