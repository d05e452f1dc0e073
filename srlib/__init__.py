"""srlib: the library behind the srlib notebooks.

Data flows one way: data -> models -> train -> evaluate -> viz -> notebooks.
"""
__version__ = "0.1.0"
