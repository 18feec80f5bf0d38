"""Media work (probe, validate, transcode, strip metadata) over ffmpeg: arrives with video messages."""
