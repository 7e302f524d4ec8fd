// placeholder replaced in the foundation work
