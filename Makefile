# The two commands of the README:  make demo  |  make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# In this checkout the shared data sit beside the repository; elsewhere set GENOISE_DATA.
SHARED_DATA := $(abspath ../shared/data)
export GENOISE_DATA ?= $(if $(wildcard $(SHARED_DATA)/mnist),$(SHARED_DATA),)

.PHONY: install demo test lint clean

$(BIN)/genoise: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,deploy]'
	touch $(BIN)/genoise

install: $(BIN)/genoise

demo: install
	$(BIN)/genoise demo

test: install
	$(BIN)/ruff check genoise tests benchmarks
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

lint: install
	$(BIN)/ruff check genoise tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
