-- A staff-owned token acts with its owner's role, so the gateway checks that role on every
-- call (from its cache). A role change must reach every instance's cache the way a status
-- change does: notify `owner:<id>` when the changing transaction commits, and every instance
-- drops that owner's cached tokens.
CREATE TRIGGER staff_owner_role_changed AFTER UPDATE OF role ON staff
    FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role)
    EXECUTE FUNCTION owner_changed();
