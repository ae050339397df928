"""``make bench``: the fleet's performance as ratios measured in one run (see README.md)."""
