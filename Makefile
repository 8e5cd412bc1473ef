# The two commands: `make run` serves the console, `make test` runs every test.
# Both install what is missing and start PostgreSQL when DATABASE_URL is not set.
.PHONY: run test lint bench sqlx-prepare db-start db-stop

run:
	scripts/run.sh

test:
	scripts/test.sh

lint:
	scripts/lint.sh

bench:
	scripts/bench.sh

sqlx-prepare:
	scripts/sqlx-prepare.sh

db-start:
	scripts/db.sh start

db-stop:
	scripts/db.sh stop
