"""What reports on a finished run: the summary lines, report.html and its plots.

It reads only the output directory (and, for plots, the input the manifest names).
"""
