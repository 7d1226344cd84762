from .comic_classifier import COMICClassifier

__all__ = ['COMICClassifier']
