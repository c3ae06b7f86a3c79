from .online import OnlineTSM
from .recognizer2d import Recognizer2D
