# Included by the recipes' Makefiles after ROOT, S2S and PYTHON are set. On a fresh
# clone the first step that needs s2s or the project's Python creates the virtual
# environment (`make install` at the top); a user's own S2S= or PYTHON= that exists
# is left alone. MAKEFLAGS is emptied so the recipe's variables (BIN=, RUN=, ...)
# given on the command line do not reach the top-level Makefile, which has its own.
$(ROOT)/.venv/bin/s2s $(ROOT)/.venv/bin/python:
	MAKEFLAGS= $(MAKE) -C $(ROOT) install
