# The two commands of the quick start, and the install they share.
#   make demo   : install (once) and run the whole pipeline on the embedded synthetic catalog
#   make test   : install (once) and run the test suite (with the docstrings' examples)
#   make lint   : ruff, and the import contract checked on the package as installed
PYTHON ?= python3.11
VENV   ?= .venv
OUT    ?= demo-out
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lid-spark-installed

.PHONY: install demo test lint bench spleeter-env clean

install: $(STAMP)

$(STAMP): requirements/main.txt requirements/test.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (set PYTHON=...)"; exit 1; }
	@command -v java >/dev/null || { echo "needs Java 17 (java on PATH)"; exit 1; }
	@free=$$(df -Pk . | awk 'NR==2 {print $$4}'); [ "$$free" -ge 7340032 ] || \
	  echo "warning: $$((free / 1048576)) GB of disk free here; the install needs about 7 GB (torch with its CUDA libraries, PySpark)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --no-cache-dir --upgrade pip
	$(PY) -m pip install -q --no-cache-dir -r requirements/main.txt -r requirements/test.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lid-spark demo --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest -q -ra

# The contract sees jobs/ and udfs/ where a wheel puts them (lid_spark.jobs, lid_spark.udfs), so it
# reads a copy installed under build/ rather than the checkout.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	rm -rf build/contract
	$(PY) -m pip install -q --no-deps --target build/contract . 2>/dev/null
	cd build/contract && ../../$(VENV)/bin/lint-imports ../../pyproject.toml

spleeter-env: $(STAMP)
	$(VENV)/bin/lid-spark spleeter_env --python $(PYTHON)

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) $(OUT) lid-spark-out .pytest_cache build
