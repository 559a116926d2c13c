//! Test support shared by the Jetty reader's tests (`xml`) and the
//! translation's (`translate`, `protocols`): Jetty 10's stock
//! `jetty-ssl-context.xml`, and properties from pairs.

use std::collections::HashMap;

pub(super) const STOCK_10: &str = r#"<?xml version="1.0"?>
<!DOCTYPE Configure PUBLIC "-//Jetty//Configure//EN" "https://www.eclipse.org/jetty/configure_10_0.dtd">
<Configure id="sslContextFactory" class="org.eclipse.jetty.util.ssl.SslContextFactory$Server">
  <Set name="Provider" property="jetty.sslContext.provider"/>
  <Set name="KeyStorePath">
    <Property name="jetty.sslContext.keyStoreAbsolutePath">
      <Default>
        <Property name="jetty.base" default="."/>/<Property name="jetty.sslContext.keyStorePath" default="etc/keystore.p12"/>
      </Default>
    </Property>
  </Set>
  <Set name="KeyStorePassword"><Property name="jetty.sslContext.keyStorePassword" deprecated="jetty.keystore.password" default="OBF:1vny1zlo1x8e1vnw1vn61x8g1zlu1vn4"/></Set>
  <Set name="KeyStoreType" property="jetty.sslContext.keyStoreType"/>
  <Set name="NeedClientAuth"><Property name="jetty.sslContext.needClientAuth" default="false"/></Set>
  <Set name="RenegotiationAllowed"><Property name="jetty.sslContext.renegotiationAllowed" default="true"/></Set>
  <Set name="SniRequired">
    <Property name="jetty.sslContext.sniRequired" default="false"/>
  </Set>
  <Set name="IncludeProtocols">
    <Array type="String">
      <Item>TLSv1.3</Item>
      <Item>TLSv1.2</Item>
    </Array>
  </Set>
  <Set name="ExcludeProtocols">
    <Array type="String">
      <Item>TLSv1</Item>
      <Item>TLSv1.1</Item>
      <Item>SSLv3</Item>
    </Array>
  </Set>
</Configure>
"#;

pub(super) fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
