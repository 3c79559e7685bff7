"""`tocha serve`: a page where you draw or drop an image and the model answers, and a JSON API."""
