# The two commands: `make run` serves the console, `make test` runs every test.
# Both install what is missing and start PostgreSQL when DATABASE_URL is not set.
.PHONY: run test check lint bench release sqlx-prepare db-start db-stop

run:
	scripts/run.sh

# `make check` (formatting, clippy, Rust tests, .sqlx/), then the browser tests.
test:
	scripts/test.sh

# The fast part of `make test`: everything but the browser tests.
check:
	scripts/check.sh

lint:
	scripts/lint.sh

# The production build in dist/ (README, Production).
release:
	scripts/release.sh

bench:
	scripts/bench.sh

sqlx-prepare:
	scripts/sqlx-prepare.sh

db-start:
	scripts/db.sh start

db-stop:
	scripts/db.sh stop
