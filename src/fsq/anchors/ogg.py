"""The bytes of an Ogg Opus file that are Opus audio packets, from its page headers (RFC 3533, RFC 7845).

Each Ogg page starts with ``OggS``, a 27-byte header whose last byte is the number of segments, then that many
lacing values (segment sizes), then the segments; a packet ends at a lacing value below 255. The first two packets
of an Ogg Opus stream are the ``OpusHead`` and ``OpusTags`` headers; every later packet is audio.
"""

from __future__ import annotations


def opus_payload_bytes(data: bytes) -> int:
    """Bytes of the audio packets (every packet after the first two) of the Ogg Opus file ``data``; a ValueError
    when a page is malformed or cut short."""
    pos = packets_done = payload = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS" or pos + 27 > len(data):
            raise ValueError(f"not an Ogg page at byte {pos} of {len(data)}")
        count = data[pos + 26]
        lacing = data[pos + 27 : pos + 27 + count]
        if len(lacing) != count or pos + 27 + count + sum(lacing) > len(data):
            raise ValueError(f"Ogg page at byte {pos} is cut short")
        for value in lacing:
            if packets_done >= 2:
                payload += value
            if value < 255:
                packets_done += 1
        pos += 27 + count + sum(lacing)
    return payload
