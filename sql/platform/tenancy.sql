-- platform/tenancy.sql: who sees which org. A session binds itself to one org with
--     SET crm.org_id = '<uuid>'   (or set_config('crm.org_id', ..., true) per transaction)
-- and functions refuse any other org (crm.assert_org, SQLSTATE CX003).
-- Current definitions, re-applied after the migrations whenever this file changes (sql/README.md).

-- The org the current session is bound to (NULL when unbound).
CREATE OR REPLACE FUNCTION crm.current_org_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
RETURN nullif(current_setting('crm.org_id', TRUE), '')::uuid;

-- Raise CX003 when a function is asked for an org other than the one the session is bound to.
-- Inside a SECURITY DEFINER function (current_user is not the session's role) an unbound session must see
-- every org (crm.session_sees_every_org) to name one: workers serve every org, application sessions one.
CREATE OR REPLACE FUNCTION crm.assert_org(p_org_id uuid) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_bound uuid := crm.current_org_id();
BEGIN
    IF p_org_id IS NULL THEN
        RAISE EXCEPTION 'org id must not be null' USING ERRCODE = 'CX002';
    END IF;
    IF v_bound IS NOT NULL AND v_bound <> p_org_id THEN
        RAISE EXCEPTION 'this session is bound to org %, not %', v_bound, p_org_id USING ERRCODE = 'CX003';
    END IF;
    IF v_bound IS NULL
        AND current_user <> coalesce(nullif(current_setting('role', TRUE), 'none'), session_user)
        AND NOT crm.session_sees_every_org() THEN
        RAISE EXCEPTION 'this session is not bound to an org (set crm.org_id)' USING ERRCODE = 'CX003';
    END IF;
END
$$;

-- Does the session's own role (SET ROLE, else the login; never the owner of a SECURITY DEFINER function
-- being run) see the rows of every org?
CREATE OR REPLACE FUNCTION crm.session_sees_every_org() RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_role text := coalesce(nullif(current_setting('role', TRUE), 'none'), session_user);
BEGIN
    RETURN EXISTS (SELECT 1 FROM pg_roles AS r WHERE r.rolname = v_role AND (r.rolsuper OR r.rolbypassrls))
        OR pg_has_role(v_role, 'crm_worker', 'USAGE')
        OR pg_has_role(
            v_role, (SELECT c.relowner FROM pg_class AS c WHERE c.oid = 'crm.contact_index'::regclass), 'USAGE'
        );
END
$$;
