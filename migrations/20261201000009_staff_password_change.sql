-- A password someone other than its owner chose or saw (the first admin's, a new account's,
-- a reset's) must be replaced by its owner at their first sign-in before anything else in
-- the console is reachable. Accounts that exist already keep working as they do.
ALTER TABLE staff ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;
