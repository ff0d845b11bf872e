"""Evaluation: AP/mAP, P/R/F1 at tuned thresholds, the paper's Tables 1 and 2, plots (paper section 4)."""
