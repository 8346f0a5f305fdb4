-- expect: 2:1 RESET is allowed in state files only for the session settings
RESET work_mem;
