//! JUnit XML checked against tests/schemas/junit-10.xsd by libxml2 (what
//! `xmllint --schema` runs), in process: a validation costs microseconds
//! where starting xmllint costs milliseconds. Declared by hand: the five
//! calls need no bindings crate.

use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

const JUNIT_XSD: &str = include_str!("../../tests/schemas/junit-10.xsd");

/// XML_PARSE_NONET: never fetch anything.
const XML_PARSE_NONET: c_int = 1 << 11;

#[link(name = "xml2")]
extern "C" {
    fn xmlSchemaNewMemParserCtxt(buffer: *const c_char, size: c_int) -> *mut c_void;
    fn xmlSchemaParse(ctxt: *mut c_void) -> *mut c_void;
    fn xmlSchemaFreeParserCtxt(ctxt: *mut c_void);
    fn xmlSchemaNewValidCtxt(schema: *mut c_void) -> *mut c_void;
    fn xmlSchemaFreeValidCtxt(ctxt: *mut c_void);
    fn xmlSchemaValidateDoc(ctxt: *mut c_void, doc: *mut c_void) -> c_int;
    fn xmlReadMemory(
        buffer: *const c_char,
        size: c_int,
        url: *const c_char,
        encoding: *const c_char,
        options: c_int,
    ) -> *mut c_void;
    fn xmlFreeDoc(doc: *mut c_void);
}

/// The parsed schema, kept for the process (the fuzzer runs in one
/// thread; the pointer is only read).
struct Schema(*mut c_void);
// SAFETY: libxml2 schemas are immutable once parsed and may be shared by
// validation contexts.
unsafe impl Send for Schema {}
unsafe impl Sync for Schema {}

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        // SAFETY: a buffer of the given size; the context is freed after use.
        unsafe {
            let ctxt =
                xmlSchemaNewMemParserCtxt(JUNIT_XSD.as_ptr().cast(), JUNIT_XSD.len() as c_int);
            assert!(!ctxt.is_null(), "libxml2: no schema parser context");
            let schema = xmlSchemaParse(ctxt);
            xmlSchemaFreeParserCtxt(ctxt);
            assert!(!schema.is_null(), "libxml2 cannot parse junit-10.xsd");
            Schema(schema)
        }
    })
}

/// Whether `xml` is well-formed and valid against junit-10.xsd; libxml2
/// prints why not on stderr.
pub fn junit_is_valid(xml: &str) -> bool {
    let schema = schema();
    // SAFETY: a buffer of the given size; every object is freed here.
    unsafe {
        let doc = xmlReadMemory(
            xml.as_ptr().cast(),
            xml.len() as c_int,
            c"junit.xml".as_ptr(),
            std::ptr::null(),
            XML_PARSE_NONET,
        );
        if doc.is_null() {
            return false;
        }
        let ctxt = xmlSchemaNewValidCtxt(schema.0);
        let result = xmlSchemaValidateDoc(ctxt, doc);
        xmlSchemaFreeValidCtxt(ctxt);
        xmlFreeDoc(doc);
        result == 0
    }
}
