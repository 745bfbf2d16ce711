"""The detection engine: a Django-free library that turns a video or photo into a verdict.

Import what you need from its modules; this package imports nothing heavy, so the web
process can use the typed results (`ml.results`) and errors (`ml.errors`) without torch:

    from ml.inference import Detector
    detector = Detector.load("ml/weights/efficientnet_lstm.pt")
    result = detector.analyze_video("clip.mp4", frames=32)
"""

__version__ = "0.1.0"
