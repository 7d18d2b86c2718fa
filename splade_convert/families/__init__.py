"""One module per architecture; ``registry.py`` lists them."""
