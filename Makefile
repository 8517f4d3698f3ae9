# crmlab: `make report` then `make test`. Only python3 (3.10+) and make are needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CRMLAB := $(VENV)/bin/crmlab
SAMPLE := data/sample
OUT    ?= reports/{date}

.PHONY: install report test lab sample bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,spark]'
	$(PY) -m ipykernel install --sys-prefix --name crmlab --display-name "crmlab (Python 3)" >/dev/null
	touch $@

install: $(VENV)/.installed

$(SAMPLE)/orders.csv: | $(VENV)/.installed
	$(CRMLAB) sample --out $(SAMPLE)

sample: $(SAMPLE)/orders.csv

report: install sample
	$(CRMLAB) report --orders $(SAMPLE)/orders.csv --sends $(SAMPLE)/sends.csv --out '$(OUT)'

test: install
	$(PY) -m pytest -q

lab: install
	$(VENV)/bin/jupyter lab notebooks/

bench: install
	$(PY) benchmarks/bench_load.py
	$(PY) benchmarks/bench_clv_summary.py
	$(PY) benchmarks/bench_analyses.py

clean:
	rm -rf $(VENV)
