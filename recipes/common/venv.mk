# Included by the recipes' Makefiles after ROOT, S2S and PYTHON are set. On a fresh
# clone the first step that needs s2s or the project's Python creates the virtual
# environment (`make install` at the top). Steps name $(NEED_S2S) / $(NEED_PYTHON) as
# order-only prerequisites: the venv's programs when S2S and PYTHON are the defaults,
# nothing when the user gives their own (S2S=s2s from PATH is not a file here).
# The recipe's variables given on the command line (BIN=, RUN=, ...) are not passed
# down (the top-level Makefile has its own BIN); make's flags are, so make -n stays dry.
VENV_S2S := $(ROOT)/.venv/bin/s2s
VENV_PYTHON := $(ROOT)/.venv/bin/python
NEED_S2S := $(filter $(VENV_S2S),$(S2S))
NEED_PYTHON := $(filter $(VENV_PYTHON),$(PYTHON))
$(VENV_S2S) $(VENV_PYTHON): MAKEOVERRIDES :=
$(VENV_S2S) $(VENV_PYTHON):
	$(MAKE) -C $(ROOT) install
