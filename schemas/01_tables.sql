-- HR sample: the desired state of the `public` schema (tables, keys, indexes).
-- Edit this file and commit; the pipeline computes and applies the migration.

CREATE TABLE public.employee (
    emp_no bigint GENERATED ALWAYS AS IDENTITY,
    birth_date date NOT NULL,
    first_name text NOT NULL,
    last_name text NOT NULL,
    gender text NOT NULL,
    hire_date date NOT NULL,
    CONSTRAINT employee_pkey PRIMARY KEY (emp_no),
    CONSTRAINT employee_gender_check CHECK (gender IN ('M', 'F', 'X'))
);

COMMENT ON TABLE public.employee IS 'Everyone who works or worked for the company.';

CREATE INDEX idx_employee_hire_date ON public.employee (hire_date);

CREATE TABLE public.department (
    dept_no text NOT NULL,
    dept_name text NOT NULL,
    CONSTRAINT department_pkey PRIMARY KEY (dept_no),
    CONSTRAINT department_dept_name_key UNIQUE (dept_name)
);

COMMENT ON TABLE public.department IS 'Organisational units.';

CREATE TABLE public.dept_manager (
    emp_no bigint NOT NULL,
    dept_no text NOT NULL,
    from_date date NOT NULL,
    to_date date NOT NULL,
    CONSTRAINT dept_manager_pkey PRIMARY KEY (emp_no, dept_no),
    CONSTRAINT dept_manager_emp_no_fkey FOREIGN KEY (emp_no) REFERENCES public.employee (emp_no),
    CONSTRAINT dept_manager_dept_no_fkey FOREIGN KEY (dept_no) REFERENCES public.department (dept_no)
);

COMMENT ON TABLE public.dept_manager IS 'Which employee managed which department, and when.';

CREATE INDEX idx_dept_manager_dept_no ON public.dept_manager (dept_no);

CREATE TABLE public.dept_emp (
    emp_no bigint NOT NULL,
    dept_no text NOT NULL,
    from_date date NOT NULL,
    to_date date NOT NULL,
    CONSTRAINT dept_emp_pkey PRIMARY KEY (emp_no, dept_no),
    CONSTRAINT dept_emp_emp_no_fkey FOREIGN KEY (emp_no) REFERENCES public.employee (emp_no),
    CONSTRAINT dept_emp_dept_no_fkey FOREIGN KEY (dept_no) REFERENCES public.department (dept_no)
);

COMMENT ON TABLE public.dept_emp IS 'Which employee worked in which department, and when.';

CREATE INDEX idx_dept_emp_dept_no ON public.dept_emp (dept_no);

CREATE TABLE public.title (
    emp_no bigint NOT NULL,
    title text NOT NULL,
    from_date date NOT NULL,
    to_date date,
    CONSTRAINT title_pkey PRIMARY KEY (emp_no, title, from_date),
    CONSTRAINT title_emp_no_fkey FOREIGN KEY (emp_no) REFERENCES public.employee (emp_no)
);

COMMENT ON TABLE public.title IS 'Job titles held by employees over time.';

CREATE TABLE public.salary (
    emp_no bigint NOT NULL,
    amount numeric(12, 2) NOT NULL,
    from_date date NOT NULL,
    to_date date NOT NULL,
    CONSTRAINT salary_pkey PRIMARY KEY (emp_no, from_date),
    CONSTRAINT salary_emp_no_fkey FOREIGN KEY (emp_no) REFERENCES public.employee (emp_no),
    CONSTRAINT salary_amount_check CHECK (amount >= 0)
);

COMMENT ON TABLE public.salary IS 'Salary history per employee.';

CREATE INDEX idx_salary_amount ON public.salary (amount);
