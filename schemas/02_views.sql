-- Views over the HR tables.

CREATE VIEW public.dept_emp_latest_date AS
SELECT emp_no, max(from_date) AS from_date, max(to_date) AS to_date
FROM public.dept_emp
GROUP BY emp_no;

COMMENT ON VIEW public.dept_emp_latest_date IS 'Latest department assignment dates per employee.';

CREATE VIEW public.current_dept_emp AS
SELECT l.emp_no, d.dept_no, l.from_date, l.to_date
FROM public.dept_emp d
JOIN public.dept_emp_latest_date l
  ON d.emp_no = l.emp_no AND d.from_date = l.from_date AND l.to_date = d.to_date;

COMMENT ON VIEW public.current_dept_emp IS 'The department each employee currently belongs to.';
