"""The console entry and the tools: plot, groups, compare."""
