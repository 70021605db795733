# Included by the recipes' Makefiles after ROOT, S2S and PYTHON are set. On a fresh
# clone the first step that needs s2s or the project's Python creates the virtual
# environment (`make install` at the top); a user's own S2S= or PYTHON= that exists
# is left alone. The recipe's variables given on the command line (BIN=, RUN=, ...)
# are not passed down: the top-level Makefile has its own BIN.
VENV_TARGETS := $(ROOT)/.venv/bin/s2s $(ROOT)/.venv/bin/python
$(VENV_TARGETS): MAKEOVERRIDES :=
$(VENV_TARGETS):
	$(MAKE) -C $(ROOT) install
