"""Shot cut detection: a content score for each decoded frame, and the cuts it implies.

Placeholder; filled in by the prep-side work on issue #17.
"""
