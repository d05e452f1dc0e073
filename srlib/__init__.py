"""srlib: the library behind the srlib notebooks.

Data flows one way: data -> models -> evaluate -> losses -> train -> studies -> viz -> notebooks
(each layer imports only those before it; ``fileio``, ``device``, ``paths``, ``profiles``,
``provenance`` and ``reference`` lie below them all).
"""
__version__ = "0.1.0"
