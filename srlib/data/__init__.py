"""Data: MATLAB-compatible resizing, colour, image I/O, the dataset catalog and datasets."""
from .colour import modcrop, rgb2ycbcr, rgb_to_y, to_tensor, to_uint8, ycbcr2rgb
from .io import ImageLoadError, list_images, load_image, save_image
from .resize import imresize, imresize_quantized

__all__ = [
    "ImageLoadError", "imresize", "imresize_quantized", "list_images", "load_image", "modcrop",
    "rgb2ycbcr", "rgb_to_y", "save_image", "to_tensor", "to_uint8", "ycbcr2rgb",
]
