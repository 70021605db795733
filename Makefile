# s2s: top-level tasks. `make demo` sets up and runs the whole path; `make test` tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= demo
DEMO_MINUTES ?= 8

.PHONY: install test check format demo demo-sample clean

$(BIN)/s2s: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@

install: $(BIN)/s2s

test: install
	$(BIN)/python -m pytest

check: install
	$(BIN)/ruff check s2s runtime tests benchmarks recipes
	$(BIN)/ruff format --check s2s runtime tests benchmarks recipes

format: install
	$(BIN)/ruff format s2s runtime tests benchmarks recipes
	$(BIN)/ruff check --fix s2s runtime tests benchmarks recipes

# German->English: fetch the recipe's data from Debian packages, prepare it, train the
# CPU config for 12 minutes, translate a few test sentences, score the whole test set.
MT := recipes/mt-de-en
DEMO_CONFIG ?= config.demo.yaml
MT_RUN := $(MT)/runs/de-en-$(basename $(DEMO_CONFIG))
demo: install
	$(MAKE) -C $(MT) all CONFIG=$(DEMO_CONFIG) S2S=$(abspath $(BIN))/s2s
	@echo "--- five test sentences: German, s2s, reference ---"
	@head -n 5 $(MT)/data/de-en/test.de | $(BIN)/s2s translate \
	  --checkpoint $(MT_RUN)/best.pt 2>/dev/null \
	  | paste -d '\n' <(head -n 5 $(MT)/data/de-en/test.de) - \
	    <(head -n 5 $(MT)/data/de-en/test.en) | sed 's/^/  /'
	@echo "--- test set ---"
	@cat $(MT_RUN)/eval.txt

# The same path offline, on the small committed sample corpus (recipes/sample-de-en).
demo-sample: install
	$(BIN)/s2s prep text --src de --tgt en --train recipes/sample-de-en/train \
	  --valid recipes/sample-de-en/valid --test recipes/sample-de-en/test \
	  --out $(DEMO)/data-bin --vocab-size 2000 --joint-vocab
	$(BIN)/s2s train recipes/demo/config.yaml --data $(DEMO)/data-bin --out $(DEMO)/run \
	  --set train.max_minutes=$(DEMO_MINUTES) --resume
	$(BIN)/s2s translate --checkpoint $(DEMO)/run/best.pt \
	  --input recipes/sample-de-en/test.de --output $(DEMO)/test.hyp.en
	$(BIN)/s2s score bleu --ref recipes/sample-de-en/test.en --hyp $(DEMO)/test.hyp.en

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
