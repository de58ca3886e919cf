"""Library of the fnet-cifar experiment: models (model.py) and image sets (data.py)."""
