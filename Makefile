# The two commands of the quick start, and the install they share.
#   make demo   : install (once) and run the whole pipeline on the embedded synthetic catalog
#   make test   : install (once) and run the test suite
PYTHON ?= python3.11
VENV   ?= .venv
OUT    ?= demo-out
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lid-spark-installed

.PHONY: install demo test bench spleeter-env clean

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

spleeter-env: $(STAMP)
	$(VENV)/bin/lid-spark spleeter_env --python $(PYTHON)

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) $(OUT) lid-spark-out .pytest_cache
