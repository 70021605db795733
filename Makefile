# s2s: top-level tasks. `make demo` sets up and runs the whole path; `make test` tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO ?= demo
DEMO_MINUTES ?= 8

.PHONY: install test check format demo clean

$(BIN)/s2s: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@

install: $(BIN)/s2s

test: install
	$(BIN)/python -m pytest

check: install
	$(BIN)/ruff check s2s tests benchmarks recipes
	$(BIN)/ruff format --check s2s tests benchmarks recipes

format: install
	$(BIN)/ruff format s2s tests benchmarks recipes
	$(BIN)/ruff check --fix s2s tests benchmarks recipes

# German->English on the committed sample corpus (recipes/sample-de-en): prepare,
# train for DEMO_MINUTES on the CPU, translate a few test sentences, score the test set.
demo: install
	$(BIN)/s2s prep text --src de --tgt en --train recipes/sample-de-en/train \
	  --valid recipes/sample-de-en/valid --test recipes/sample-de-en/test \
	  --out $(DEMO)/data-bin --vocab-size 2000 --joint-vocab
	$(BIN)/s2s train recipes/demo/config.yaml --data $(DEMO)/data-bin --out $(DEMO)/run \
	  --set train.max_minutes=$(DEMO_MINUTES) --resume
	@echo "--- a few test sentences (German -> English) ---"
	head -n 5 recipes/sample-de-en/test.de | $(BIN)/s2s translate --checkpoint $(DEMO)/run/best.pt
	$(BIN)/s2s translate --checkpoint $(DEMO)/run/best.pt \
	  --input recipes/sample-de-en/test.de --output $(DEMO)/test.hyp.en
	$(BIN)/s2s score bleu --ref recipes/sample-de-en/test.en --hyp $(DEMO)/test.hyp.en

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
