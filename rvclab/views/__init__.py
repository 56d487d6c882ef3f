"""Everything a person looks at: widgets, plots, the demo report.

The only package that imports ipywidgets or matplotlib.
"""
