"""Speech: mouth shapes (visemes) from audio or from a client's timings. Pure computation."""
