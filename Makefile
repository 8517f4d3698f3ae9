# crmlab: `make report` then `make test`. Only python3 (3.10+) and make are needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CRMLAB := $(VENV)/bin/crmlab
SAMPLE := data/sample
OUT    ?= reports/{date}

.PHONY: install report test lab sample bench mutate clean screenshots docs

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,spark,docs]'
	$(PY) -m ipykernel install --sys-prefix --name crmlab --display-name "crmlab (Python 3)" >/dev/null
	touch $@

install: $(VENV)/.installed

$(SAMPLE)/orders.csv: | $(VENV)/.installed
	$(CRMLAB) sample --out $(SAMPLE)

sample: $(SAMPLE)/orders.csv

report: install sample
	$(CRMLAB) report --orders $(SAMPLE)/orders.csv --sends $(SAMPLE)/sends.csv --out '$(OUT)'

test: install
	$(PY) -m pytest -q -n 2 --dist loadfile   # two workers (kernels and Spark wait on I/O); a file's tests
	                                          # stay together, so its report run (a module fixture) runs once

# `make screenshots [RUN=reports/latest]`: every page of a run (each report and index.html), whole,
# as Debian's `chromium` renders it (driven by Playwright, no browser download), 1280 px (desktop)
# and 390 px (phone) wide, into RUN/screenshots/ (crmlab/report/browser.py). Without Chromium it
# says so and does nothing.
RUN ?= reports/latest

screenshots: install
	$(PY) -m crmlab.report.browser screenshots '$(RUN)'

# `make docs`: the documentation site (MkDocs + mkdocstrings, mkdocs.yml) into site/, strict:
# a warning (a broken link, a missing page, a docstring mkdocstrings cannot read) fails it.
# `make test` builds it too (tests/test_docs.py).
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

lab: install
	$(VENV)/bin/jupyter lab notebooks/

bench: install
	$(PY) benchmarks/bench_load.py
	$(PY) benchmarks/bench_clv_summary.py
	$(PY) benchmarks/bench_analyses.py
	$(PY) benchmarks/bench_scale.py --orders 5000000 --baseline
	$(PY) benchmarks/bench_scale.py --orders 30000000 --parts sql,cached,nocache,clean

# Mutation testing (docs/methods/testing.md; not part of `make test`): mutmut over the
# MUTATE_MODULES against the fast tests of [tool.mutmut] in pyproject.toml, in a fresh copy
# of HEAD under MUTATE_DIR (mutmut writes mutants there, never into this checkout), stopped
# after MUTATE_BUDGET seconds (what was tested by then still counts), 2 workers.
MUTATE_DIR     ?= /tmp/crmlab-mutate
MUTATE_MODULES ?= crmlab.analyses.retention crmlab.stats.proportion
MUTATE_BUDGET  ?= 1200
MUTMUT         := $(abspath $(VENV))/bin/mutmut

mutate: install
	@d="$$(realpath -m '$(MUTATE_DIR)')"; \
	case "$$d/" in "$(CURDIR)/"*) echo "make mutate: MUTATE_DIR is inside the checkout: refused"; exit 2;; esac; \
	case "$(CURDIR)/" in "$${d%/}/"*) echo "make mutate: MUTATE_DIR holds the checkout: refused"; exit 2;; esac; \
	if [ "$$d" = / ] || [ "$$d" = "$$(realpath ~)" ]; then echo "make mutate: MUTATE_DIR=$$d: refused"; exit 2; fi
	rm -rf '$(MUTATE_DIR)' && mkdir -p '$(MUTATE_DIR)'
	git archive HEAD | tar -x -C '$(MUTATE_DIR)'
	cd '$(MUTATE_DIR)' && timeout --signal=INT --kill-after=60 $(MUTATE_BUDGET) \
		$(MUTMUT) run --max-children 2 $(foreach m,$(MUTATE_MODULES),'$(m).*') > run.log 2>&1 || true
	@cd '$(MUTATE_DIR)' && tr '\r' '\n' < run.log | grep -E '^. [0-9]+/[0-9]+ ' | tail -1; \
		$(MUTMUT) results --all true > results.txt 2>/dev/null; \
		for m in $(MUTATE_MODULES); do echo "$$m:"; grep -F "    $$m." results.txt | sed 's/.*: //' | sort | uniq -c; done; \
		echo "log: $(MUTATE_DIR)/run.log; survivors: cd $(MUTATE_DIR) && $(MUTMUT) results; $(MUTMUT) show NAME"

clean:
	rm -rf $(VENV)
