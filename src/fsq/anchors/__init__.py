"""Classical codecs run as anchors beside fsq's tokenizers, through their own command-line tools: Codec2 and Opus
for audio (:mod:`fsq.anchors.audio`)."""
