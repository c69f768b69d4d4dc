"""Real image data that installs without a network: MNIST, Fashion-MNIST, photo crops, and user image folders.

``prepare("mnist")`` (once, into the cache) then ``load_images("mnist", "train")`` gives an ``ImageSet`` of uint8
images; see ``fsq.data.sources`` for the sources, splits and cache, ``fsq.data.images`` for image folders.
"""

from fsq.data.images import ImageSet
from fsq.data.sources import SourceUnavailable, cache_dir, list_sources, load_images, prepare

__all__ = ["ImageSet", "SourceUnavailable", "cache_dir", "list_sources", "load_images", "prepare"]
