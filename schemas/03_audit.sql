-- Audit trail: every change to salaries is recorded by a trigger.

CREATE TABLE public.audit (
    id bigint GENERATED ALWAYS AS IDENTITY,
    operation text NOT NULL,
    query text,
    user_name text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_pkey PRIMARY KEY (id)
);

COMMENT ON TABLE public.audit IS 'Audit log of data changes on sensitive tables.';

CREATE INDEX idx_audit_operation ON public.audit (operation);

CREATE INDEX idx_audit_user_name ON public.audit (user_name);

CREATE INDEX idx_audit_changed_at ON public.audit (changed_at);

CREATE FUNCTION public.log_dml_operations() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO public.audit (operation, query, user_name)
    VALUES (TG_OP, current_query(), current_user);
    RETURN NULL;
END;
$$;

CREATE TRIGGER salary_log_trigger
AFTER INSERT OR UPDATE OR DELETE ON public.salary
FOR EACH ROW EXECUTE FUNCTION public.log_dml_operations();
