-- expect: 2:1 not managed by schema-pipeline yet
CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler;
