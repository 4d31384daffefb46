//! Sans-IO RTP media: packets, codecs, relaying and recording.
