"""The science core: data, training sets, classifiers, metrics and one ``evaluate`` entry point.

Heavy dependencies (torch, scikit-learn) load only where they are used, so
``import objectives`` stays light.
"""
